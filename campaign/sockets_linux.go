package campaign

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// socketPorts returns the local ports of process pid's TCP connections to
// remotePort: read from /proc while the process is stopped (SIGSTOP) just
// before it is killed, they tell which of the destination's connections —
// and so which requests — belonged to the killed node.
func socketPorts(pid, remotePort int) (map[int]bool, error) {
	links, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil {
			continue // closed meanwhile
		}
		if strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || !inodes[fs[9]] {
				continue
			}
			if hexPort(fs[2]) == remotePort {
				ports[hexPort(fs[1])] = true
			}
		}
		f.Close()
	}
	return ports, nil
}

// hexPort reads the port of an "ADDR:PORT" /proc/net/tcp field.
func hexPort(field string) int {
	i := strings.LastIndexByte(field, ':')
	if i < 0 {
		return -1
	}
	p, err := strconv.ParseInt(field[i+1:], 16, 32)
	if err != nil {
		return -1
	}
	return int(p)
}
