/* main.c: xapid's command line. */
#include <stdio.h>
#include <string.h>
#include "datamodel.h"
int main(int argc, char **argv)
{
    (void)argc; (void)argv;
    printf("%u classes\n", dm_n_classes);
    return 0;
}
