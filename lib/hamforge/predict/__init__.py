"""hamforge.predict"""
