; Inno Setup 6.3+ script of the Voxtral Desk installer. Built by build_windows.ps1 after PyInstaller:
;   ISCC.exe /DAppVersion=0.1.0 /DOutputName=voxtral-desk-0.1.0-windows-x64-setup packaging\windows\voxtral-desk.iss
; Installs per user by default (no administrator rights; %LOCALAPPDATA%\Programs\Voxtral Desk); the
; setup offers an all-users install to administrators. Models and settings live in
; %LOCALAPPDATA%\voxtral-desk and are kept on uninstall.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef OutputName
  #define OutputName "voxtral-desk-" + AppVersion + "-windows-x64-setup"
#endif
#define AppName "Voxtral Desk"
#define AppExe "voxtral-desk.exe"
#define Root AddBackslash(SourcePath) + "..\..\"

[Setup]
AppId={{6C0B1A52-7E1D-4C4B-9A3E-5D2F8B7A9C41}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Voxtral Desk contributors
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
#if FileExists(Root + "LICENSE")
LicenseFile={#Root}LICENSE
#endif
SetupIconFile={#Root}build\icon\voxtral-desk.ico
UninstallDisplayIcon={app}\{#AppExe}
OutputDir={#Root}dist
OutputBaseFilename={#OutputName}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#Root}dist\voxtral-desk\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; A new version replaces the old bundle as a whole (no stale libraries from the previous one).
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
