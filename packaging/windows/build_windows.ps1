# Build Voxtral Desk for Windows (x64): the one-folder bundle, a portable zip, and an Inno Setup installer.
#   dist\voxtral-desk\                                   voxtral-desk.exe (windowed) + voxtral-desk-cli.exe
#   dist\voxtral-desk-<version>-windows-x64.zip          the bundle, portable
#   dist\voxtral-desk-<version>-windows-x64-setup.exe    the installer (needs Inno Setup 6.3+)
# Usage, from any folder, in PowerShell:
#   packaging\windows\build_windows.ps1 [-Python PATH] [-SkipSelfTest] [-SkipInstaller]
# The Python environment needs Voxtral Desk's dependencies and PyInstaller: pip install -e ".[package]".
# Not built in this project's CI (Linux only): see packaging\README.md.
param(
    [string]$Python = "",
    [switch]$SkipSelfTest,
    [switch]$SkipInstaller
)
$ErrorActionPreference = "Stop"
Set-Location (Resolve-Path (Join-Path $PSScriptRoot "..\.."))

if (-not $Python) {
    if (Test-Path ".venv\Scripts\python.exe") { $Python = ".venv\Scripts\python.exe" } else { $Python = "python" }
}
$version = (Select-String -Path "voxtral_desk\__init__.py" -Pattern '__version__ = "([^"]+)"').Matches[0].Groups[1].Value
$name = "voxtral-desk-$version-windows-x64"
$started = Get-Date

Write-Host "== PyInstaller, Voxtral Desk $version"
& $Python -m PyInstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller packaging\voxtral-desk.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed ($LASTEXITCODE)" }

if (-not $SkipSelfTest) {
    # The console twin prints; the windowed voxtral-desk.exe has no stdout.
    Write-Host "== self-test"
    & dist\voxtral-desk\voxtral-desk-cli.exe --self-test
    if ($LASTEXITCODE -ne 0) { throw "the bundle's self-test failed ($LASTEXITCODE)" }
}

Write-Host "== portable zip"
$zip = "dist\$name.zip"
if (Test-Path $zip) { Remove-Item $zip }
Compress-Archive -Path "dist\voxtral-desk" -DestinationPath $zip

if (-not $SkipInstaller) {
    Write-Host "== Inno Setup installer"
    $iscc = (Get-Command iscc.exe -ErrorAction SilentlyContinue).Source
    if (-not $iscc) { $iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
    if (-not (Test-Path $iscc)) { throw "ISCC.exe not found: install Inno Setup 6.3+ (winget install JRSoftware.InnoSetup)" }
    # The setup program's own icon, from the PNG the spec rendered (Pillow comes with the dependencies).
    & $Python -c "from PIL import Image; Image.open('build/icon/voxtral-desk-1024.png').save('build/icon/voxtral-desk.ico', sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])"
    if ($LASTEXITCODE -ne 0) { throw "could not make build\icon\voxtral-desk.ico" }
    & $iscc "/DAppVersion=$version" "/DOutputName=$name-setup" packaging\windows\voxtral-desk.iss
    if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed ($LASTEXITCODE)" }
}

$seconds = [int]((Get-Date) - $started).TotalSeconds
$size = (Get-ChildItem -Recurse -File "dist\voxtral-desk" | Measure-Object -Property Length -Sum).Sum / 1MB
Write-Host ("== done in {0} s; bundle dist\voxtral-desk ({1:N0} MB)" -f $seconds, $size)
Get-ChildItem "dist\$name*" | ForEach-Object { Write-Host ("   {0} ({1:N0} MB)" -f $_.Name, ($_.Length / 1MB)) }
