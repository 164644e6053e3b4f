"""hamforge.partition"""
