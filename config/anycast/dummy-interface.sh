#!/bin/sh
# The anycast service address on a dummy interface: the same address on every instance, and BGP
# decides which instance a client reaches. Run as root at boot, before Meridian starts; Meridian
# listens on 192.0.2.53:53 (explicit) or on 0.0.0.0:53 / [::]:53 (wildcard). Documentation
# addresses; not run by the tests.
#
# Persistent with systemd-networkd instead, two files:
#   /etc/systemd/network/anycast0.netdev     /etc/systemd/network/anycast0.network
#     [NetDev]                                 [Match]
#     Name=anycast0                            Name=anycast0
#     Kind=dummy                               [Network]
#                                              Address=192.0.2.53/32
#                                              Address=2001:db8::53/128
set -eu

ip link add anycast0 type dummy
ip link set anycast0 up
ip addr add 192.0.2.53/32 dev anycast0
ip -6 addr add 2001:db8::53/128 dev anycast0 nodad   # nodad: usable at once

# A loopback alias works too: ip addr add 192.0.2.53/32 dev lo
