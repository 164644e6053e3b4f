"""hamforge.graph"""
