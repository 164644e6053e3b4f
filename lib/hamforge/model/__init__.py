"""hamforge.model"""
