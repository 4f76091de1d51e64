/*
 * shm: shared mappings and robust process-shared mutexes. See shm.h.
 */
#include "util/shm.h"

#include <errno.h>
#include <sys/mman.h>

#include "util/log.h"

void *shm_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void shm_unmap(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

void shm_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(m, &attr);
	pthread_mutexattr_destroy(&attr);
}

void shm_mutex_lock(pthread_mutex_t *m, const char *what)
{
	int r = pthread_mutex_lock(m);
	if (r == EOWNERDEAD) {
		/* The owner died inside the critical section; its user repairs what it left. */
		log_warn("event=%s_owner_died", what);
		pthread_mutex_consistent(m);
	} else if (r != 0) {
		panic("%s: mutex lock failed: %d", what, r);
	}
}

void shm_mutex_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}
