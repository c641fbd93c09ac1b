package web

import (
	"net"
	"net/url"
	"strconv"
)

// ViewerURL is one address viewers can open, with the token.
type ViewerURL struct {
	Interface string `json:"interface"` // e.g. "wlan0"; "loopback" for 127.0.0.1
	IP        net.IP `json:"ip"`
	URL       string `json:"url"`
}

// ViewerURLs lists the URLs viewers can open: one per LAN IPv4 address when
// the server listens on all interfaces, then the loopback one.
func (s *Server) ViewerURLs() []ViewerURL {
	mk := func(iface string, ip net.IP) ViewerURL {
		u := url.URL{Scheme: "http", Host: net.JoinHostPort(ip.String(), strconv.Itoa(s.Port())), Path: "/",
			RawQuery: "t=" + s.token}
		return ViewerURL{Interface: iface, IP: ip, URL: u.String()}
	}
	bound := s.Addr().IP
	if !bound.IsUnspecified() {
		name := "loopback"
		if !bound.IsLoopback() {
			name = interfaceOf(bound)
		}
		return []ViewerURL{mk(name, bound)}
	}
	var out []ViewerURL
	lanAddrs(func(iface string, ip net.IP) {
		if ip.To4() != nil && !ip.IsLinkLocalUnicast() {
			out = append(out, mk(iface, ip.To4()))
		}
	})
	return append(out, mk("loopback", net.IPv4(127, 0, 0, 1).To4()))
}

// lanAddrs calls f with each address of each interface that is up, loopback left out.
func lanAddrs(f func(iface string, ip net.IP)) {
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				f(ifc.Name, ipn.IP)
			}
		}
	}
}

// Exposed lists every address other computers can reach the share on, as
// "interface address": the viewer URLs' IPv4 addresses, and also the IPv6
// ones (link-local included), since listening on all interfaces takes both.
func (s *Server) Exposed() []string {
	bound := s.Addr().IP
	if !bound.IsUnspecified() {
		if bound.IsLoopback() {
			return nil
		}
		return []string{interfaceOf(bound) + " " + bound.String()}
	}
	var out []string
	lanAddrs(func(iface string, ip net.IP) { out = append(out, iface+" "+ip.String()) })
	return out
}

func interfaceOf(ip net.IP) string {
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
				return ifc.Name
			}
		}
	}
	return ip.String()
}
