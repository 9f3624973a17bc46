/* `imqtt passwd`: add or replace an entry of a password file.
 *
 *   imqtt passwd [--password P] [--iterations N] FILE USER
 *
 * Without --password the password is read from stdin (one line; prompted
 * without echo when stdin is a terminal). See docs/auth.md.
 */
#ifndef IMQTT_CMD_PASSWD_H
#define IMQTT_CMD_PASSWD_H

/* argv[0] is the subcommand name ("passwd"). Returns the process exit
 * status: 0 on success, 1 on failure, 2 on a usage error. */
int cmd_passwd_main(int argc, char **argv);

#endif
