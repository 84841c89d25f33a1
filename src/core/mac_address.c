/* mac_address.c: the MAC address text XenAPI accepts (mac_address.h). */
#include "mac_address.h"

#include <glib.h>
#include <string.h>

bool mac_address_valid(const char *text)
{
    if (strlen(text) != 17)
        return false;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? text[i] != ':' : !g_ascii_isxdigit(text[i]))
            return false;
    return true;
}
