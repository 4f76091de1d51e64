/*
 * queue_list: `carteiro queue list`, what is in the spool, read straight
 * from the files (no running server needed).
 */
#ifndef CARTEIRO_QUEUE_QUEUE_LIST_H
#define CARTEIRO_QUEUE_QUEUE_LIST_H

#include <stdio.h>

/* Print every message of spool to out. 0, or -errno if the spool cannot be read. */
int queue_list(const char *spool, FILE *out);

#endif
