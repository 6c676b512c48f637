# cmake --install: headers, libchex, libchexnet and a CMake package so that an outside project can
#   find_package(chex) and target_link_libraries(app PRIVATE chex::chex), adding chex::chexnet for
#   the CheXNet domain (ChestX-ray14 data, metrics, the demo phantom).
include(CMakePackageConfigHelpers)
set(CHEX_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/chex)

install(TARGETS chex chexnet EXPORT chexTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/engine/include/chex ${PROJECT_SOURCE_DIR}/chexnet/include/chex
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The base layer's chex::Error, which libchex's headers use (its CUDA checks are not public).
install(FILES ${PROJECT_SOURCE_DIR}/base/include/chex/error.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/chex)
install(EXPORT chexTargets NAMESPACE chex:: DESTINATION ${CHEX_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/chexConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/chexConfig.cmake
                              INSTALL_DESTINATION ${CHEX_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/chexConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/chexConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/chexConfigVersion.cmake
        DESTINATION ${CHEX_INSTALL_CMAKEDIR})

# The programs, beside the library, so that an installed chex is usable without the build tree.
# Their RPATH is relative ($ORIGIN/../lib), so the prefix can be moved or copied as a whole.
set(CHEX_INSTALLED_PROGRAMS chex_cli train_chexnet bench_densenet)
if(TARGET bench_kernels)  # the CUDA backend's benchmark exists only when CUDA is built
  list(APPEND CHEX_INSTALLED_PROGRAMS bench_kernels)
endif()
set_target_properties(${CHEX_INSTALLED_PROGRAMS} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
# libchexnet needs libchex from the same folder when it is loaded by a program that does not name it.
set_target_properties(chex chexnet PROPERTIES INSTALL_RPATH "$ORIGIN")
install(TARGETS ${CHEX_INSTALLED_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
