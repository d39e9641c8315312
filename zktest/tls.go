package zktest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority made for a test: it signs server and client
// certificates that ZooKeeper (PEM key and trust stores) and Go's crypto/tls
// both accept.
type CA struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	pem  []byte
}

var serial atomic.Int64

// NewCA returns a new certificate authority named name.
func NewCA(name string) (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// PEM returns the CA's certificate in PEM.
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.pem...) }

// Pool returns a pool that trusts the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue returns a certificate for commonName, valid from notBefore to
// notAfter, for 127.0.0.1 and localhost, usable by servers and clients.
func (ca *CA) Issue(commonName string, notBefore, notAfter time.Time) (tls.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ClientCert issues a client certificate for commonName, valid for a day;
// with notAfter in the past it is expired. It fails t on error.
func (ca *CA) ClientCert(t testing.TB, commonName string, notAfter time.Time) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(commonName, time.Now().Add(-48*time.Hour), notAfter)
	if err != nil {
		t.Fatalf("zktest: client certificate: %v", err)
	}
	return c
}

// writeServerStores writes the PEM key store (key and certificate) and
// trust store (the CA) ZooKeeper's secure port uses, in dir.
func (ca *CA) writeServerStores(dir string) (keyStore, trustStore string, err error) {
	cert, err := ca.Issue("zktest-server", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", err
	}
	ks := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})...)
	keyStore, trustStore = filepath.Join(dir, "server.pem"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(keyStore, ks, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(trustStore, ca.pem, 0o644); err != nil {
		return "", "", err
	}
	return keyStore, trustStore, nil
}

// tlsConfigLines are the zoo.cfg lines of a TLS-only secure client port on
// 127.0.0.1:port, with client certificates wanted (not needed) and the
// x509 ACL scheme on: a client that presents a certificate the CA signed
// is authenticated as x509:<its subject>. The port speaks TLS 1.3 and 1.2
// (a client picks with its tls.Config's MinVersion and MaxVersion);
// ZooKeeper 3.8's defaults allow 1.2 only, and its default cipher suites
// are 1.2's, so both are listed.
func tlsConfigLines(port int, keyStore, trustStore string) string {
	return fmt.Sprintf(`secureClientPort=%d
secureClientPortAddress=127.0.0.1
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=%s
ssl.keyStore.type=PEM
ssl.trustStore.location=%s
ssl.trustStore.type=PEM
ssl.clientAuth=want
ssl.protocol=TLSv1.3
ssl.enabledProtocols=TLSv1.3,TLSv1.2
ssl.ciphersuites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider
`, port, keyStore, trustStore)
}

// TLS returns the CA the cluster's servers trust and present certificates
// of, or nil when Config.TLS is off.
func (c *Cluster) TLS() *CA { return c.ca }

// TLSConfig returns a client TLS configuration that trusts the cluster's
// servers (no client certificate), or nil when Config.TLS is off.
func (c *Cluster) TLSConfig() *tls.Config {
	if c.ca == nil {
		return nil
	}
	return &tls.Config{RootCAs: c.ca.Pool(), MinVersion: tls.VersionTLS12}
}
