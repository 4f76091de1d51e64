/*
 * shm: anonymous shared memory for tables that every worker process updates
 * (connection counts, AUTH failures), mapped by the master before it forks,
 * guarded by a process-shared robust mutex: a process that dies holding it
 * cannot wedge the others (the next locker is told, and the lock is made
 * consistent again).
 */
#ifndef CARTEIRO_UTIL_SHM_H
#define CARTEIRO_UTIL_SHM_H

#include <pthread.h>
#include <stddef.h>

/* Map size bytes of zeroed shared memory; NULL on failure. */
void *shm_map(size_t size);
void shm_unmap(void *p, size_t size);
/* Make *m a process-shared robust mutex (inside a shm_map'ed region). */
void shm_mutex_init(pthread_mutex_t *m);
/* Lock; a previous owner's death is logged (event=<what>_owner_died) and recovered. */
void shm_mutex_lock(pthread_mutex_t *m, const char *what);
void shm_mutex_unlock(pthread_mutex_t *m);

#endif
