"""hamforge.so3"""
