param([int]$Top = 10)
Get-ComputerInfo -Property OsName, OsVersion, CsTotalPhysicalMemory | Format-List
Get-Volume | Where-Object DriveLetter | Select-Object DriveLetter, FileSystemLabel,
  @{n='SizeGB'; e={[math]::Round($_.Size / 1GB, 1)}}, @{n='FreeGB'; e={[math]::Round($_.SizeRemaining / 1GB, 1)}} | Format-Table
Get-ChildItem -Path $env:USERPROFILE -Directory -ErrorAction SilentlyContinue | ForEach-Object {
  $size = (Get-ChildItem $_.FullName -Recurse -File -ErrorAction SilentlyContinue | Measure-Object Length -Sum).Sum
  [pscustomobject]@{ Folder = $_.Name; SizeGB = [math]::Round($size / 1GB, 2) }
} | Sort-Object SizeGB -Descending | Select-Object -First $Top | Format-Table
