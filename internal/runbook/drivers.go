package runbook

import (
	"crypto/tls"
	"net/http"
	"os"

	"github.com/firebreak/firebreak/internal/driver"
)

// BuildDrivers builds the real drivers from rb's drivers section: exec and
// http always, redfish always (credentials optional), ssh when a user is
// configured. Datastore drivers are added by the caller.
func BuildDrivers(rb *Runbook) (driver.Registry, error) {
	reg := driver.Registry{
		"exec": driver.Exec{},
		"http": &driver.HTTP{},
	}
	rf := &driver.Redfish{Username: rb.Drivers.Redfish.User}
	if env := rb.Drivers.Redfish.PasswordEnv; env != "" {
		rf.Password = os.Getenv(env)
	}
	if rb.Drivers.Redfish.Insecure {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // operator's explicit choice
		rf.Client = &http.Client{Transport: tr}
	}
	reg["redfish"] = rf
	if c := rb.Drivers.SSH; c.User != "" {
		s, err := driver.NewSSH(driver.SSHConfig{User: c.User, KeyFile: c.Key, KnownHostsFile: c.KnownHosts})
		if err != nil {
			return nil, err
		}
		reg["ssh"] = s
	}
	return reg, nil
}
