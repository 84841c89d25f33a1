"""802.1Q frames on a link, seen and sent with a packet socket (run inside
a namespace with `ip netns exec`):

    vlan_wire.py capture IFACE ETHERTYPE   prints "ready", then the VLAN id
                                           of the first such frame ("none"
                                           if untagged; ETHERTYPE in hex)
    vlan_wire.py send IFACE TAG SRC_MAC    sends one broadcast frame tagged
                                           TAG (ethertype 0x88b5) from SRC_MAC
"""
import socket
import struct
import sys

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4


def capture(iface, ethertype):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((iface, 0))
    s.settimeout(30)
    print("ready", flush=True)
    while True:
        data, anc, _, _ = s.recvmsg(65535, socket.CMSG_SPACE(32))
        if len(data) < 14 or struct.unpack("!H", data[12:14])[0] != ethertype:
            continue
        for level, kind, payload in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA:
                status, _, _, _, _, tci = struct.unpack("IIIHHH", payload[:18])
                if status & TP_STATUS_VLAN_VALID:
                    print(tci & 0x0FFF, flush=True)
                    return
        print("none", flush=True)
        return


def send(iface, tag, src):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    mac = bytes(int(b, 16) for b in src.split(":"))
    frame = b"\xff" * 6 + mac + struct.pack("!HHH", 0x8100, tag, 0x88B5) + b"xapid" * 12
    s.send(frame)


if __name__ == "__main__":
    if sys.argv[1] == "capture":
        capture(sys.argv[2], int(sys.argv[3], 16))
    else:
        send(sys.argv[2], int(sys.argv[3]), sys.argv[4])
