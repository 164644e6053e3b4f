"""hamforge.validate"""
