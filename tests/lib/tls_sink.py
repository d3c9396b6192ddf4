"""A TLS server for tests: it makes its own self-signed certificate, accepts
connections on 127.0.0.1 and appends what each sends (or that its handshake failed)
to files, so a test can see whether a client trusted it and what went over TLS.

usage: python3 tls_sink.py DIR
writes DIR/sink.pem (the server's certificate: the trust anchor a client needs),
DIR/other.pem (an unrelated certificate: a wrong trust anchor), DIR/port (when
listening), and then DIR/received (plaintext received) and DIR/failures (one line per
failed handshake). Runs until killed.
"""
import datetime
import os
import socket
import ssl
import sys
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress


def self_signed(name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def main():
    out = sys.argv[1]
    key, cert = self_signed("127.0.0.1")
    _, other = self_signed("someone else")
    write(os.path.join(out, "sink.pem"), cert.public_bytes(serialization.Encoding.PEM))
    write(os.path.join(out, "other.pem"), other.public_bytes(serialization.Encoding.PEM))
    write(
        os.path.join(out, "sink.key"),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(out, "sink.pem"), os.path.join(out, "sink.key"))
    lock = threading.Lock()

    def serve(conn):
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with lock, open(os.path.join(out, "failures"), "a") as f:
                f.write("handshake failed: %s\n" % e)
            conn.close()
            return
        try:
            while True:
                data = tls.recv(65536)
                if not data:
                    break
                with lock, open(os.path.join(out, "received"), "ab") as f:
                    f.write(data)
        except (ssl.SSLError, OSError):
            pass
        tls.close()

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    write(os.path.join(out, "port"), b"%d\n" % s.getsockname()[1])
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
