"""hamforge.basis"""
