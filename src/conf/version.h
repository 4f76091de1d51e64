/* version: carteiro's version string, shown by --version and in logs. */
#ifndef CARTEIRO_CONF_VERSION_H
#define CARTEIRO_CONF_VERSION_H

#define CARTEIRO_VERSION "0.1.0"

#endif
