# Install rules and the Debian package (CPack DEB). Included from the
# top-level CMakeLists.txt after the targets exist.
#
#   cmake --install build [--prefix /usr/local]     binaries, man pages,
#                                                   example config, unit
#   (cd build && cpack -G DEB)                      imqtt_<ver>_<arch>.deb
#
# Paths follow GNUInstallDirs. With the prefix /usr (what the .deb uses)
# the config goes to /etc/imqtt and the unit to systemd's unit directory;
# with any other prefix both stay under it (PREFIX/etc/imqtt,
# PREFIX/lib/systemd/system), so a non-root `cmake --install` never
# writes outside its prefix. The .deb is always laid out for /usr: cpack
# installs with the prefix /usr whatever the build tree was configured
# with, which is why the paths below are chosen at install time.
include(GNUInstallDirs)

# Man pages: the version filled in (@PROJECT_VERSION@ in .TH), then
# compressed as Debian wants them (gzip -n: no timestamp, so the package
# is reproducible).
set(IMQTT_MAN_PAGES imqtt.1 imqtt-bench.1 imqtt.json.5)
find_program(GZIP_EXECUTABLE gzip REQUIRED)
set(imqtt_man_outputs "")
foreach(page ${IMQTT_MAN_PAGES})
  set(src ${CMAKE_CURRENT_BINARY_DIR}/man/${page})
  configure_file(${CMAKE_CURRENT_SOURCE_DIR}/docs/man/${page} ${src} @ONLY)
  set(out ${src}.gz)
  add_custom_command(OUTPUT ${out}
    COMMAND ${GZIP_EXECUTABLE} -9 -n -c ${src} > ${out}
    DEPENDS ${src} VERBATIM)
  list(APPEND imqtt_man_outputs ${out})
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(imqtt-man ALL DEPENDS ${imqtt_man_outputs})

foreach(tool imqtt imqtt-bench)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(PROGRAMS packaging/imqtt-healthcheck
        DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/imqtt)
install(FILES LICENSE RENAME copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES README.md docs/config.md docs/operations.md docs/im.md docs/auth.md
              docs/store.md docs/reliability.md examples/imqtt.json examples/im.json
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The systemd unit names the installed binary and config. Both are known
# only at install time (see above), so the unit is configured then.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(etc \"/etc\")
    set(unitdir \"/lib/systemd/system\")
  else()
    set(etc \"\${CMAKE_INSTALL_PREFIX}/etc\")
    set(unitdir \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
  endif()
  set(IMQTT_SYSCONFDIR \"\${etc}\")
  set(IMQTT_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(IMQTT_LIBEXECDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBEXECDIR}\")
  # A name of its own per destination: two cpack runs on one tree (the
  # tests do that, each with its own staging DESTDIR) must not write the
  # same file.
  string(MD5 tag \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
  set(unit \"${CMAKE_CURRENT_BINARY_DIR}/packaging/\${tag}/imqtt.service\")
  configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/packaging/imqtt.service.in\" \"\${unit}\" @ONLY)
  file(INSTALL \"\${unit}\"
       DESTINATION \"\${unitdir}\" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  file(REMOVE_RECURSE \"${CMAKE_CURRENT_BINARY_DIR}/packaging/\${tag}\")
  file(INSTALL \"${CMAKE_CURRENT_SOURCE_DIR}/packaging/imqtt.json\"
       DESTINATION \"\${etc}/imqtt\" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
")

# ---- the .deb ----
set(CPACK_PACKAGE_NAME imqtt)
set(CPACK_PACKAGE_VENDOR "imqtt")
set(CPACK_PACKAGE_CONTACT "imqtt maintainers <dev@imqtt>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "MQTT 3.1.1/5.0 broker for instant messaging")
set(CPACK_PACKAGE_DESCRIPTION
    "One libuv process serving MQTT over TCP, TLS, WebSocket and WSS, with\n user@device identities, JWT or password-file authentication, an LMDB\n store (every acknowledged message is on disk before its PUBACK),\n Prometheus metrics and SIGHUP reload. Ships a systemd unit (not enabled\n by default) and a loopback-only configuration in /etc/imqtt.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Install into the staging directory through DESTDIR, so install rules
# see the real prefix /usr (the unit and /etc paths depend on it).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from dpkg-shlibdeps (libuv1, libmbedtls14, ...);
# the healthcheck (ExecStartPost) is bash, the maintainer scripts use
# useradd (passwd).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "bash, passwd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto-clients")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/conffiles
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
