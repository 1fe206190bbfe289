package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// rsaBatches of rsaBatchSize verifies time the bare RSA-2048 verify; the
// median batch is taken, so a burst of other work on the machine counts
// little.
const (
	rsaBatches   = 7
	rsaBatchSize = 300
)

// rusageThread is Linux's RUSAGE_THREAD: the calling thread's CPU time.
const rusageThread = 1

// rsaVerifyCPU is the CPU time of one RSA-2048 PKCS#1 v1.5 SHA-256
// verify, the signature check of an Entra token, measured as the
// services' CPU is (CPU time, not wall time), on this thread.
func rsaVerifyCPU() (time.Duration, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	digest := sha256.Sum256([]byte("header.claims"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var per []time.Duration
	for range rsaBatches {
		t0, err := threadCPU()
		if err != nil {
			return 0, err
		}
		for range rsaBatchSize {
			if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
				return 0, err
			}
		}
		t1, err := threadCPU()
		if err != nil {
			return 0, err
		}
		per = append(per, (t1-t0)/rsaBatchSize)
	}
	slices.Sort(per)
	return per[len(per)/2], nil
}

func threadCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
