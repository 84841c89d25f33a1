/* mac_address.h: the MAC address text XenAPI accepts. */
#pragma once

#include <stdbool.h>

/* Six ':'-separated pairs of hex digits, either case (XAPI's is_valid_MAC). */
bool mac_address_valid(const char *text);
