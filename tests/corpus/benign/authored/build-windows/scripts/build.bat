@echo off
setlocal
if exist out rmdir /s /q out
mkdir out
msbuild App.sln /m /p:Configuration=Release /p:Platform=x64 /v:minimal || exit /b 1
xcopy /y /i bin\x64\Release\*.exe out\
xcopy /y /i bin\x64\Release\*.dll out\
echo Artefacts in %CD%\out
