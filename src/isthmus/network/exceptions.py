"""Core networking errors, with Neutron's names, codes and messages."""

from isthmus.exceptions import BadRequest, Conflict, InUse, NotFound


class NetworkNotFound(NotFound):
    message = "Network %(net_id)s could not be found."


class SubnetNotFound(NotFound):
    message = "Subnet %(subnet_id)s could not be found."


class RouterNotFound(NotFound):
    message = "Router %(router_id)s could not be found"


class PortNotFound(NotFound):
    message = "Port %(port_id)s could not be found."


class RouterInterfaceNotFoundForSubnet(NotFound):
    message = "Router %(router_id)s has no interface on subnet %(subnet_id)s"


class NetworkInUse(InUse):
    message = ("Unable to complete operation on network %(net_id)s. There are one or more "
               "ports still in use on the network.")


class ExternalNetworkInUse(InUse):
    message = ("External network %(net_id)s cannot be updated to be made non-external, "
               "since it has existing gateway ports.")


class SubnetInUse(InUse):
    message = "Unable to complete operation on subnet %(subnet_id)s: %(reason)s."


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network %(net_id)s."


class IpAddressAlreadyAllocated(Conflict):
    message = "IP address %(ip)s already allocated in subnet %(subnet_id)s"


class InvalidIpForSubnet(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class GatewayConflictWithAllocationPools(InUse):
    message = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s"


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s is not valid."


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."


class OverlappingAllocationPools(Conflict):
    message = ("Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet "
               "%(subnet_cidr)s.")


class RouterInUseByPorts(InUse):
    error_type = "RouterInUse"
    message = "Router %(router_id)s still has ports"


class InvalidRoutes(BadRequest):
    """``routes`` lists the router's routes as they would be, Python-printed, as Neutron's."""

    message = "Invalid format for routes: %(routes)s, %(reason)s"


class RouterInterfaceInUseByRoute(InUse):
    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be "
               "deleted, as it is required by one or more routes.")


class OverQuota(Conflict):
    message = "Quota exceeded for resources: %(overs)s."


class TagNotFound(NotFound):
    message = "Tag %(tag)s could not be found."
