"""hamforge.dft"""
