"""hamforge.train"""
