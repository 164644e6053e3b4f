"""hamforge.io"""
