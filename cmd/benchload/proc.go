package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100
// on every Linux architecture Go supports.
const userHZ = 100

// procSample is what /proc says of a process at one moment.
type procSample struct {
	cpu        time.Duration // user + system CPU time since the process started
	writeBytes int64         // bytes it caused to be written to storage (/proc/<pid>/io)
	peakRSS    int64         // the resident set's high-water mark, bytes (VmHWM)
}

func readProc(pid int) (procSample, error) {
	var s procSample
	if pid == 0 {
		return s, fmt.Errorf("the process is not running")
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces: fields are counted after its ')'.
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat)[i+1:])
	if i < 0 || len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	s.cpu = time.Duration(utime+stime) * time.Second / userHZ
	if s.writeBytes, err = procField(fmt.Sprintf("/proc/%d/io", pid), "write_bytes:"); err != nil {
		return s, err
	}
	kb, err := procField(fmt.Sprintf("/proc/%d/status", pid), "VmHWM:")
	s.peakRSS = kb << 10
	return s, err
}

// procField is the number after name on its line of a /proc file.
func procField(path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, name)
}
