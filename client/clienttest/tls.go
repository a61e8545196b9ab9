package clienttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"time"
)

// TLSFront plays the load balancer of a production deployment, which ends
// TLS in front of the gateways (they speak plain TCP): it listens on
// loopback with a self-signed certificate for 127.0.0.1 and "gateway.test"
// and forwards each connection's plain bytes to a backend, passing a
// half-close on.
type TLSFront struct {
	ln      net.Listener
	backend string
	pool    *x509.CertPool
	caPEM   []byte
	wg      sync.WaitGroup
}

// StartTLSFront starts a TLSFront for the gateway (or Server) at backend.
func StartTLSFront(backend string) (*TLSFront, error) {
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return nil, err
	}
	f := &TLSFront{ln: ln, backend: backend, pool: x509.NewCertPool(),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})}
	f.pool.AddCert(cert.Leaf)
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// Addr is the front's address, host:port.
func (f *TLSFront) Addr() string { return f.ln.Addr().String() }

// Pool is a certificate pool that trusts the front.
func (f *TLSFront) Pool() *x509.CertPool { return f.pool }

// CAPEM is the front's certificate, PEM-encoded, as a --tls-ca file holds it.
func (f *TLSFront) CAPEM() []byte { return f.caPEM }

// Close stops accepting and waits for the connections being forwarded,
// which end when either side closes.
func (f *TLSFront) Close() {
	_ = f.ln.Close()
	f.wg.Wait()
}

func (f *TLSFront) accept() {
	defer f.wg.Done()
	for {
		front, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.forward(front) }()
	}
}

// forward copies between front and a new connection to the backend until
// both directions end.
func (f *TLSFront) forward(front net.Conn) {
	defer front.Close()
	back, err := net.Dial("tcp", f.backend)
	if err != nil {
		return
	}
	defer back.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(back, front)
		_ = back.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(front, back)
	_ = front.Close() // ends the copy above when the client still writes
	<-done
}

// selfSigned returns a certificate, its own authority, for the front.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gateway.test"},
		DNSNames:              []string{"gateway.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("clienttest: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("clienttest: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
