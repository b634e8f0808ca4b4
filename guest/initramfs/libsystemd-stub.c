// libsystemd.so.0 for crun in the initramfs, without systemd: the guest has no
// D-Bus, no journal and no service manager, and the real library (with the
// compression and crypto libraries it loads) would add 3.4 MB to the
// initramfs, which the kernel unpacks with emulated code on PVM hosts (about
// 1.5 s per MB). crun calls these only for --systemd-cgroup (the agent uses
// cgroupfs), --log=journald and $NOTIFY_SOCKET; they fail with ENOSYS, or
// report "nothing to notify" as the real ones do without $NOTIFY_SOCKET.
// libsystemd-stub.map gives the symbols the versions crun links against.
// Freestanding: no libc needed.

#define ENOSYS 38

typedef struct sd_bus sd_bus;
typedef struct sd_bus_message sd_bus_message;
typedef struct sd_bus_error sd_bus_error;

int sd_bus_default_system(sd_bus **bus) { (void)bus; return -ENOSYS; }
int sd_bus_default_user(sd_bus **bus) { (void)bus; return -ENOSYS; }
sd_bus *sd_bus_unref(sd_bus *bus) { (void)bus; return 0; }
int sd_bus_process(sd_bus *bus, sd_bus_message **m) { (void)bus; (void)m; return -ENOSYS; }
int sd_bus_wait(sd_bus *bus, unsigned long timeout) { (void)bus; (void)timeout; return -ENOSYS; }
int sd_bus_call(sd_bus *bus, sd_bus_message *m, unsigned long timeout, sd_bus_error *e, sd_bus_message **reply) {
	(void)bus; (void)m; (void)timeout; (void)e; (void)reply;
	return -ENOSYS;
}
int sd_bus_match_signal_async(sd_bus *bus, void **slot, const char *sender, const char *path, const char *interface,
	const char *member, void *callback, void *install_callback, void *userdata) {
	(void)bus; (void)slot; (void)sender; (void)path; (void)interface; (void)member; (void)callback;
	(void)install_callback; (void)userdata;
	return -ENOSYS;
}
int sd_bus_message_new_method_call(sd_bus *bus, sd_bus_message **m, const char *destination, const char *path,
	const char *interface, const char *member) {
	(void)bus; (void)m; (void)destination; (void)path; (void)interface; (void)member;
	return -ENOSYS;
}
sd_bus_message *sd_bus_message_unref(sd_bus_message *m) { (void)m; return 0; }
int sd_bus_message_append(sd_bus_message *m, const char *types, ...) { (void)m; (void)types; return -ENOSYS; }
int sd_bus_message_append_strv(sd_bus_message *m, char **l) { (void)m; (void)l; return -ENOSYS; }
int sd_bus_message_open_container(sd_bus_message *m, char type, const char *contents) {
	(void)m; (void)type; (void)contents;
	return -ENOSYS;
}
int sd_bus_message_close_container(sd_bus_message *m) { (void)m; return -ENOSYS; }
int sd_bus_message_read(sd_bus_message *m, const char *types, ...) { (void)m; (void)types; return -ENOSYS; }
void sd_bus_error_free(sd_bus_error *e) { (void)e; }
int sd_bus_error_get_errno(const sd_bus_error *e) { (void)e; return ENOSYS; }
int sd_journal_send_with_location(const char *file, const char *line, const char *func, const char *format, ...) {
	(void)file; (void)line; (void)func; (void)format;
	return -ENOSYS;
}
int sd_notify(int unset_environment, const char *state) { (void)unset_environment; (void)state; return 0; }
int sd_notify_barrier(int unset_environment, unsigned long timeout) { (void)unset_environment; (void)timeout; return 0; }
