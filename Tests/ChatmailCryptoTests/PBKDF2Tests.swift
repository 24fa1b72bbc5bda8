import ChatmailCrypto
import Testing

@Suite struct PBKDF2Tests {
    @Test("PBKDF2-HMAC-SHA1, RFC 6070 vectors")
    func sha1() {
        let password = Array("password".utf8)
        let salt = Array("salt".utf8)
        #expect(
            hex(Crypto.pbkdf2(.sha1, password: password, salt: salt, iterations: 1, length: 20))
                == "0c60c80f961f0e71f3a9b524af6012062fe037a6")
        #expect(
            hex(Crypto.pbkdf2(.sha1, password: password, salt: salt, iterations: 4096, length: 20))
                == "4b007901b765489abead49d926f721d065a429c1")
        #expect(
            hex(
                Crypto.pbkdf2(
                    .sha1, password: Array("pass\0word".utf8), salt: Array("sa\0lt".utf8), iterations: 4096, length: 16)
            )
                == "56fa6aa75548099dcc37d7f03425e0c3")
    }

    @Test("PBKDF2-HMAC-SHA256, published vector for password/salt")
    func sha256() {
        #expect(
            hex(
                Crypto.pbkdf2(
                    .sha256, password: Array("password".utf8), salt: Array("salt".utf8), iterations: 1, length: 32))
                == "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
        #expect(
            hex(
                Crypto.pbkdf2(
                    .sha256, password: Array("password".utf8), salt: Array("salt".utf8), iterations: 4096, length: 32))
                == "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")
    }
}
