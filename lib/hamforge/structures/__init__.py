"""hamforge.structures"""
