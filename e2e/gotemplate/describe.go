package main

// describe: what a generated key or certificate is, leaving out what is random (key material, serial number,
// signature, the instant of generation), so that sprig's generators run by Go and syncret's can be compared.

import (
	"bytes"
	"crypto"
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// describeItems reads {"items": ["<template output>", ...]} where each output is a JSON object with optional
// "key" (a PEM private key), "cert" (a PEM certificate) and "ca" (the PEM certificate that signed it), and writes
// one description per item as a JSON list of strings.
func describeItems() error {
	var in struct {
		Items []string `json:"items"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		return err
	}
	out := make([]string, 0, len(in.Items))
	for _, item := range in.Items {
		var parts map[string]string
		if err := json.Unmarshal([]byte(item), &parts); err != nil {
			out = append(out, "not a JSON object: "+err.Error())
			continue
		}
		out = append(out, describe(parts))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

func describe(parts map[string]string) string {
	var b strings.Builder
	var key crypto.PrivateKey
	if k, ok := parts["key"]; ok {
		key = describeKey(&b, k)
	}
	if c, ok := parts["cert"]; ok {
		describeCert(&b, c, parts["ca"], key)
	}
	return b.String()
}

// dsaKey is sprig's DSA private key format.
type dsaKey struct {
	Version       int
	P, Q, G, Y, X *big.Int
}

func describeKey(b *strings.Builder, text string) crypto.PrivateKey {
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		fmt.Fprintf(b, "key: no PEM\n")
		return nil
	}
	fmt.Fprintf(b, "key: PEM %q, %d headers, %d bytes after\n", block.Type, len(block.Headers), len(rest))
	var key crypto.PrivateKey
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err == nil && !bytes.Equal(x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey)), block.Bytes) {
			fmt.Fprintf(b, "key: PKCS #1 DER is not Go's\n")
		}
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
		if err == nil {
			again, _ := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
			if !bytes.Equal(again, block.Bytes) {
				fmt.Fprintf(b, "key: SEC 1 DER is not Go's\n")
			}
		}
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err == nil {
			again, _ := x509.MarshalPKCS8PrivateKey(key)
			if !bytes.Equal(again, block.Bytes) {
				fmt.Fprintf(b, "key: PKCS #8 DER is not Go's\n")
			}
		}
	case "DSA PRIVATE KEY":
		var k dsaKey
		if _, err = asn1.Unmarshal(block.Bytes, &k); err == nil {
			again, _ := asn1.Marshal(k)
			if !bytes.Equal(again, block.Bytes) {
				fmt.Fprintf(b, "key: DSA DER is not sprig's\n")
			}
			pk := &dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: dsa.Parameters{P: k.P, Q: k.Q, G: k.G}, Y: k.Y}, X: k.X}
			// p and q prime, q divides p-1, g of order q, y = g^x mod p.
			one := big.NewInt(1)
			if !k.P.ProbablyPrime(20) || !k.Q.ProbablyPrime(20) ||
				new(big.Int).Mod(new(big.Int).Sub(k.P, one), k.Q).Sign() != 0 ||
				k.G.Cmp(one) <= 0 || new(big.Int).Exp(k.G, k.Q, k.P).Cmp(one) != 0 ||
				k.X.Sign() <= 0 || k.X.Cmp(k.Q) >= 0 || new(big.Int).Exp(k.G, k.X, k.P).Cmp(k.Y) != 0 {
				fmt.Fprintf(b, "key: DSA numbers do not agree\n")
			}
			key = pk
		}
	}
	if err != nil {
		fmt.Fprintf(b, "key: %v\n", err)
		return nil
	}
	fmt.Fprintf(b, "key: %s\n", keyKind(key))
	return key
}

func keyKind(key any) string {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA %d bits, e=%d, valid=%v", k.N.BitLen(), k.E, k.Validate() == nil)
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits, e=%d", k.N.BitLen(), k.E)
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "Ed25519"
	case *dsa.PrivateKey:
		return fmt.Sprintf("DSA L=%d N=%d", k.P.BitLen(), k.Q.BitLen())
	default:
		return fmt.Sprintf("%T", key)
	}
}

// tbs is the part of a TBSCertificate whose encoding is looked at.
type tbs struct {
	Version    int `asn1:"optional,explicit,default:0,tag:0"`
	Serial     *big.Int
	SigAlg     asn1.RawValue
	Issuer     asn1.RawValue
	Validity   asn1.RawValue
	Subject    asn1.RawValue
	PublicKey  asn1.RawValue
	Extensions asn1.RawValue `asn1:"optional,explicit,tag:3"`
}

func describeCert(b *strings.Builder, text, caText string, key crypto.PrivateKey) {
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		fmt.Fprintf(b, "cert: no PEM\n")
		return
	}
	fmt.Fprintf(b, "cert: PEM %q, %d headers, %d bytes after\n", block.Type, len(block.Headers), len(rest))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		fmt.Fprintf(b, "cert: %v\n", err)
		return
	}
	var t tbs
	if _, err := asn1.Unmarshal(cert.RawTBSCertificate, &t); err != nil {
		fmt.Fprintf(b, "cert: TBS: %v\n", err)
		return
	}
	fmt.Fprintf(b, "version %d, serial positive and under 2^128: %v\n", cert.Version, t.Serial.Sign() > 0 && t.Serial.BitLen() <= 128)
	fmt.Fprintf(b, "signature algorithm %v (%x)\n", cert.SignatureAlgorithm, t.SigAlg.FullBytes)
	fmt.Fprintf(b, "issuer %x\nsubject %x\n", cert.RawIssuer, cert.RawSubject)
	var times []asn1.RawValue
	for r := t.Validity.Bytes; len(r) > 0; {
		var v asn1.RawValue
		var err error
		if r, err = asn1.Unmarshal(r, &v); err != nil {
			break
		}
		times = append(times, v)
	}
	for _, v := range times {
		fmt.Fprintf(b, "time tag %d, %d bytes\n", v.Tag, len(v.Bytes))
	}
	now := time.Now()
	fmt.Fprintf(b, "not before is now: %v; valid for %v\n",
		cert.NotBefore.After(now.Add(-10*time.Minute)) && cert.NotBefore.Before(now.Add(time.Minute)),
		cert.NotAfter.Sub(cert.NotBefore).Round(time.Hour))
	fmt.Fprintf(b, "public key %s\n", keyKind(cert.PublicKey))
	spki, _ := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if !bytes.Equal(spki, cert.RawSubjectPublicKeyInfo) {
		fmt.Fprintf(b, "public key info is not Go's encoding\n")
	}
	var keyBits struct {
		Algo      asn1.RawValue
		BitString asn1.BitString
	}
	_, _ = asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &keyBits)
	sum := sha256.Sum256(keyBits.BitString.Bytes)
	var ca *x509.Certificate
	if caText != "" {
		if cb, _ := pem.Decode([]byte(caText)); cb != nil {
			ca, _ = x509.ParseCertificate(cb.Bytes)
		}
	}
	for _, e := range cert.Extensions {
		value := hex.EncodeToString(e.Value)
		switch {
		case e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 14}):
			var id []byte
			_, _ = asn1.Unmarshal(e.Value, &id)
			value = fmt.Sprintf("SHA-256 of the key, 160 bits: %v", bytes.Equal(id, sum[:20]))
		case e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 35}):
			value = fmt.Sprintf("the CA's key id: %v", ca != nil && len(ca.SubjectKeyId) > 0 && bytes.Equal(cert.AuthorityKeyId, ca.SubjectKeyId))
		}
		fmt.Fprintf(b, "extension %v critical=%v %s\n", e.Id, e.Critical, value)
	}
	fmt.Fprintf(b, "CA %v, key usage %d, ext key usage %v, DNS %q, IPs %v\n", cert.IsCA, cert.KeyUsage, cert.ExtKeyUsage, cert.DNSNames, cert.IPAddresses)
	signer := cert
	if ca != nil {
		signer = ca
	}
	fmt.Fprintf(b, "signature verifies: %v\n", cert.CheckSignatureFrom(signer) == nil || cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil && signer == cert)
	if key != nil {
		type public interface{ Public() crypto.PublicKey }
		type equal interface{ Equal(crypto.PublicKey) bool }
		matches := false
		if k, ok := key.(public); ok {
			if e, ok := k.Public().(equal); ok {
				matches = e.Equal(cert.PublicKey)
			}
		}
		fmt.Fprintf(b, "key matches certificate: %v\n", matches)
	}
}
