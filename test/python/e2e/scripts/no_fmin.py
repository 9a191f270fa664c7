print("this script never tunes anything")
