# A workspace for the smoke suite.
print("hello")
