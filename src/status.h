/*
 * status.h - outcome codes shared by the modules.
 *
 * Modules return these (or 0/-1 plus an error text); only main.c turns them
 * into sysexits(3) exit codes. Temporary and permanent stay distinct all the
 * way through, as in qmail and nullmailer.
 */
#ifndef OUTBOX_STATUS_H
#define OUTBOX_STATUS_H

enum ob_status {
	OB_OK = 0,
	OB_USAGE,        /* bad command line                       -> 64 */
	OB_DATAERR,      /* bad message, no recipients             -> 65 */
	OB_NOUSER,       /* a recipient was refused (5xx on RCPT)  -> 67 */
	OB_UNAVAILABLE,  /* permanent failure (5xx on MAIL/DATA)   -> 69 */
	OB_SOFTWARE,     /* internal error, out of memory          -> 70 */
	OB_CANTCREAT,    /* cannot write (spool, queue)            -> 73 */
	OB_IOERR,        /* cannot read input                      -> 74 */
	OB_TEMPFAIL,     /* temporary failure, try again later     -> 75 */
	OB_PROTOCOL,     /* the server broke the protocol          -> 76 */
	OB_NOPERM,       /* authentication refused                 -> 77 */
	OB_CONFIG        /* configuration error                    -> 78 */
};

#endif
