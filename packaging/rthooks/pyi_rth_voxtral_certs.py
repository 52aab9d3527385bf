# PyInstaller runtime hook: let HTTPS (model downloads) find CA certificates on any system.
#
# The bundle carries the build machine's OpenSSL, which looks for certificates where the build machine
# keeps them (Debian: /usr/lib/ssl). Elsewhere (Fedora, openSUSE, macOS) that folder does not exist and
# every download would fail verification. If the bundled OpenSSL finds nothing, point it at the system's
# CA bundle, or at certifi's copy as a last resort. Windows uses its own certificate store: nothing to do.
import os
import ssl
import sys


def _ca_file():
    paths = ssl.get_default_verify_paths()  # cafile / capath are None when they do not exist
    if paths.cafile or (paths.capath and os.listdir(paths.capath)):
        return None
    for candidate in ("/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Arch, Gentoo
                      "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
                      "/etc/ssl/ca-bundle.pem",  # openSUSE
                      "/etc/ssl/cert.pem"):  # macOS, Alpine
        if os.path.isfile(candidate):
            return candidate
    try:
        import certifi

        return certifi.where()
    except ImportError:
        return None


if sys.platform != "win32" and not os.environ.get("SSL_CERT_FILE") and not os.environ.get("SSL_CERT_DIR"):
    _found = _ca_file()
    if _found:
        os.environ["SSL_CERT_FILE"] = _found
