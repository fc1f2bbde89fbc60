print("kvmsim")
