import argparse
import secrets
import string

WORDS = "apple river stone cloud maple tiger lemon orbit quartz velvet harbor pixel rocket ember willow falcon".split()
ap = argparse.ArgumentParser()
ap.add_argument("--words", type=int)
ap.add_argument("--chars", type=int, default=20)
args = ap.parse_args()
if args.words:
    print("-".join(secrets.choice(WORDS) for _ in range(args.words)))
else:
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*-_"
    print("".join(secrets.choice(alphabet) for _ in range(args.chars)))
