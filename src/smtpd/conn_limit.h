/*
 * conn_limit: connection counts shared by all SMTP workers, so that
 * max-connections and max-connections-per-ip hold for the server as a whole
 * and not per process.
 *
 * The table lives in anonymous shared memory that the master maps before it
 * forks the workers. It is guarded by a process-shared robust mutex: a worker
 * that dies holding it cannot wedge the others. Counts are kept per worker,
 * so that when one dies the master subtracts exactly what it held
 * (conn_limit_reset_worker) before starting its replacement.
 */
#ifndef CARTEIRO_SMTPD_CONN_LIMIT_H
#define CARTEIRO_SMTPD_CONN_LIMIT_H

#include <sys/socket.h>

struct conn_limit;

enum conn_limit_result {
	CONN_OK = 0,
	CONN_TOO_MANY = -1,        /* max-connections reached */
	CONN_TOO_MANY_FROM_IP = -2, /* max-connections-per-ip reached */
};

/* Map the shared table. NULL on failure. */
struct conn_limit *conn_limit_create(unsigned max_total, unsigned max_per_ip, unsigned nworkers);
void conn_limit_destroy(struct conn_limit *cl);
/* Count a new connection of worker from sa, or refuse it. */
int conn_limit_acquire(struct conn_limit *cl, unsigned worker, const struct sockaddr *sa);
/* Forget a connection counted by conn_limit_acquire. */
void conn_limit_release(struct conn_limit *cl, unsigned worker, const struct sockaddr *sa);
/* Forget every connection of a worker that is gone. */
void conn_limit_reset_worker(struct conn_limit *cl, unsigned worker);
/* Connections counted now (all workers). */
unsigned conn_limit_total(struct conn_limit *cl);

#endif
