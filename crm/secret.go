package crm

import "strings"

// credentialHeader reports header names that carry credentials: their value
// must come from a secret reference, never be written in the file.
func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	for _, part := range []string{"token", "secret", "password", "api-key", "apikey", "api_key"} {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}
