package types

import "time"

// NetworkResource is a network as GET /networks and GET /networks/{id}
// show it, fields in dockerd's order.
type NetworkResource struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    time.Time                   `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv4 bool                        `json:"EnableIPv4"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	IPAM       NetworkIPAM                 `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	ConfigFrom NetworkConfigReference      `json:"ConfigFrom"`
	ConfigOnly bool                        `json:"ConfigOnly"`
	Containers map[string]NetworkContainer `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`
}

// NetworkIPAM is a network's IPAM section.
type NetworkIPAM struct {
	Driver  string              `json:"Driver"`
	Options map[string]string   `json:"Options"`
	Config  []NetworkIPAMConfig `json:"Config"`
}

// NetworkIPAMConfig is one subnet of a network.
type NetworkIPAMConfig struct {
	Subnet     string            `json:"Subnet,omitempty"`
	IPRange    string            `json:"IPRange,omitempty"`
	Gateway    string            `json:"Gateway,omitempty"`
	AuxAddress map[string]string `json:"AuxiliaryAddresses,omitempty"`
}

// NetworkConfigReference names a config-only network.
type NetworkConfigReference struct {
	Network string `json:"Network"`
}

// NetworkContainer is one endpoint in a network's Containers.
type NetworkContainer struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// NetworkCreateRequest is the body of POST /networks/create.
type NetworkCreateRequest struct {
	Name           string                  `json:"Name"`
	CheckDuplicate bool                    `json:"CheckDuplicate"`
	Driver         string                  `json:"Driver"`
	Scope          string                  `json:"Scope"`
	EnableIPv4     *bool                   `json:"EnableIPv4"`
	EnableIPv6     *bool                   `json:"EnableIPv6"`
	IPAM           *NetworkIPAM            `json:"IPAM"`
	Internal       bool                    `json:"Internal"`
	Attachable     bool                    `json:"Attachable"`
	Ingress        bool                    `json:"Ingress"`
	ConfigOnly     bool                    `json:"ConfigOnly"`
	ConfigFrom     *NetworkConfigReference `json:"ConfigFrom"`
	Options        map[string]string       `json:"Options"`
	Labels         map[string]string       `json:"Labels"`
}

// NetworkCreateResponse answers POST /networks/create.
type NetworkCreateResponse struct {
	ID      string `json:"Id"`
	Warning string `json:"Warning"`
}

// NetworkConnectRequest is the body of POST /networks/{id}/connect.
type NetworkConnectRequest struct {
	Container      string            `json:"Container"`
	EndpointConfig *EndpointSettings `json:"EndpointConfig"`
}

// NetworkDisconnectRequest is the body of POST /networks/{id}/disconnect.
type NetworkDisconnectRequest struct {
	Container string `json:"Container"`
	Force     bool   `json:"Force"`
}

// NetworksPruneReport answers POST /networks/prune.
type NetworksPruneReport struct {
	NetworksDeleted []string `json:"NetworksDeleted"`
}
