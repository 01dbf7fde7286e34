package container

import (
	"context"
	"errors"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
)

// macAddressDeprecated is dockerd's warning for a container-wide MAC
// address from API 1.44 on.
const macAddressDeprecated = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."

// migrateMACAddress moves the container-wide Config.MacAddress, which
// clients of API versions before 1.44 (and docker-py's mac_address) send,
// to the endpoint of the container's network mode, as dockerd does
// (handleMACAddressBC). Before 1.44 an endpoint's own MAC address did not
// exist and is dropped, and a container-wide one on a network mode without
// an endpoint is refused; from 1.44 the container-wide one is deprecated,
// with dockerd's warning, and must agree with the endpoint's.
func migrateMACAddress(ctx context.Context, req *types.CreateRequest) (warning string, err error) {
	mac := req.Config.MacAddress
	req.Config.MacAddress = ""
	old := wire.VersionLess(ctx, "1.44")
	if mac == "" {
		if old && req.NetworkingConfig != nil {
			for _, ep := range req.NetworkingConfig.EndpointsConfig {
				if ep != nil {
					ep.MacAddress = ""
				}
			}
		}
		return "", nil
	}
	mode := req.HostConfig.NetworkMode
	if mode == "" {
		mode = "default"
	}
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		if old {
			return "", errdefs.InvalidParameter(errors.New("conflicting options: mac-address and the network mode"))
		}
		return macAddressDeprecated, nil
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &types.NetworkingConfig{}
	}
	eps := req.NetworkingConfig.EndpointsConfig
	var ep *types.EndpointSettings
	switch {
	case len(eps) == 0:
		ep = &types.EndpointSettings{}
		req.NetworkingConfig.EndpointsConfig = map[string]*types.EndpointSettings{mode: ep}
	case old:
		// One entry at most before 1.44: the network the old API used.
		for k, v := range eps {
			if v == nil {
				v = &types.EndpointSettings{}
				eps[k] = v
			}
			ep = v
			break
		}
	default:
		ep = eps[mode]
		if ep == nil {
			return "", errdefs.InvalidParameter(errors.New("unable to migrate container-wide MAC address to a specific network: HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks"))
		}
	}
	switch {
	case ep.MacAddress == "" || old:
		ep.MacAddress = mac
	case !strings.EqualFold(ep.MacAddress, mac):
		return "", errdefs.InvalidParameter(errors.New("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty"))
	}
	if old {
		return "", nil
	}
	return macAddressDeprecated, nil
}
